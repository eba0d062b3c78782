"""The `actionstyle` command: classify, restyle a clip or a folder, teach a classifier, list.

actionstyle classify clip.mp4 --segments
actionstyle classify clips/ more.mp4 --json                   # a JSON line per clip
actionstyle stylize clip.mp4 --style vangogh -o out.mp4
actionstyle stylize clip.mp4 --style vangogh --strength 0.5   # half-way to the original
actionstyle stylize clips/ --style monet -o out/ --jobs 2
actionstyle teach wave clips/                                 # clips/<label>/<clip>
actionstyle teach wave --clips wave=a.mp4 wave=b.mp4 other=more/
actionstyle classify clip.mp4 --model wave
actionstyle classifiers delete wave
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from actionstyle_client.batch import FolderRun, plan_folder, videos_in
from actionstyle_client.client import DEFAULT_URL, KEY_VARIABLE, URL_VARIABLE, Client, Job
from actionstyle_client.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    ActionStyleError,
    Conflict,
    InputRejected,
    NotFound,
)
from actionstyle_client.output import (
    ClassifyRows,
    ProgressBar,
    UploadBar,
    classifier_table,
    classify_table,
    models_table,
)
from actionstyle_client.retry import RetryPolicy
from actionstyle_client.training_set import (
    Clips,
    add_clips,
    clips_from_folder,
    clips_from_pairs,
)

EPILOG = f"""\
exit status:
  0    done
  1    the server refused the request (a bad file or parameter, an unknown model, style,
       classifier or job, a name already taken, no valid API key), or a job failed or was
       cancelled
  2    usage: bad arguments, or a local file or folder that does not exist
  3    the service is unreachable or unavailable (no connection, 503 or another 5xx, or
       still 429 after the retries)
  130  interrupted (Ctrl-C); the jobs in flight were cancelled

environment:
  {URL_VARIABLE}      the service (default {DEFAULT_URL}); --url wins
  {KEY_VARIABLE}  the API key, when the service has keys; --api-key wins
"""


class UsageError(Exception):
    """A command line that cannot work, found before anything is sent."""


def _say(message: str) -> None:
    print(f"actionstyle: {message}", file=sys.stderr, flush=True)


def make_client(args: argparse.Namespace, retries: int | None = None) -> Client:
    attempts = 1 + (args.retries if retries is None else retries)

    def tell(why: str, wait_s: float) -> None:
        _say(f"{why}; trying again in {wait_s:.1f} s")

    return Client(args.url, args.api_key, retry=RetryPolicy(attempts=attempts, on_retry=tell))


def cmd_classify(client: Client, args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.files]
    if len(paths) == 1 and not paths[0].is_dir():
        return _classify_one(client, args, paths[0])
    try:
        clips = videos_in(paths)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return _classify_many(client, args, clips)


def _classify_one(client: Client, args: argparse.Namespace, clip: Path) -> int:
    with uploading(clip.name) as bar:
        result = client.classify(
            clip, args.model, args.top_k, args.segments, args.window_s, on_upload=bar
        )
    print(json.dumps(result.to_json(), indent=2) if args.json else classify_table(result, clip))
    return EXIT_OK


def _classify_many(client: Client, args: argparse.Namespace, clips: list[Path]) -> int:
    """A row per clip (a JSON line with --json) as each answer comes; a clip the server refuses
    gets its reason and the rest go on. Exits 1 if any was refused."""
    rows = ClassifyRows([str(clip) for clip in clips])
    if not args.json:
        print(rows.header, flush=True)
    refused = 0
    for clip in clips:
        try:
            result = client.classify(clip, args.model, args.top_k, args.segments, args.window_s)
        except InputRejected as exc:
            if exc.code == "invalid_parameter":
                raise  # --top-k or --window-s: every clip would be refused alike
            refused += 1
            error = {"status": exc.status, "code": exc.code, "detail": exc.detail}
            line = json.dumps({"file": str(clip), "error": error})
            print(line if args.json else rows.refused(str(clip), str(exc)), flush=True)
            continue
        line = json.dumps({"file": str(clip)} | result.to_json())
        print(line if args.json else rows.answer(str(clip), result), flush=True)
    _say(f"{len(clips) - refused} classified, {refused} refused")
    return EXIT_REFUSED if refused else EXIT_OK


def cmd_models(client: Client, args: argparse.Namespace) -> int:
    info = client.models()
    print(json.dumps(info.to_json(), indent=2) if args.json else models_table(info))
    return EXIT_OK


def cancel_jobs(args: argparse.Namespace, job_ids: Iterable[str]) -> None:
    """Cancel on a fresh connection (the interrupted one may be mid-request); Ctrl-C ignored."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with make_client(args, retries=1) as client:
            for job_id in job_ids:
                try:
                    client.jobs.cancel(job_id)
                    _say(f"job {job_id} cancelled")
                except (Conflict, NotFound):
                    pass  # finished meanwhile, or expired: nothing left to stop
                except ActionStyleError as exc:
                    _say(f"could not cancel job {job_id}: {exc}")
    finally:
        signal.signal(signal.SIGINT, previous)


def _stylize_one(client: Client, args: argparse.Namespace) -> int:
    src: Path = args.source
    dest: Path = args.output or Path(f"{src.stem}.{args.style or 'painting'}.mp4")
    if dest.is_dir():
        dest = dest / f"{src.stem}.mp4"
    with uploading(src.name) as bar:
        job = client.stylize(
            src,
            style=args.style,
            style_image=args.style_image,
            strength=args.strength,
            on_upload=bar,
        )
    if not follow(args, job, src.name, lambda: job.download(dest)):
        return EXIT_INTERRUPTED
    print(dest)
    return EXIT_OK


@contextmanager
def uploading(label: str) -> Iterator[UploadBar]:
    """An upload's progress bar on stderr, ended when the upload is."""
    bar = UploadBar(label)
    try:
        yield bar
    finally:
        bar.done()


def follow(
    args: argparse.Namespace, job: Job, label: str, then: Callable[[], object] | None = None
) -> bool:
    """Draw the job's progress until it ends, then run `then`; False if Ctrl-C cancelled it."""
    _say(f"job {job.id} queued")
    bar = ProgressBar(label)
    try:
        try:
            job.wait(progress=bar)
        finally:
            bar.done()
        if then is not None:
            then()
    except KeyboardInterrupt:
        cancel_jobs(args, [job.id])
        return False
    return True


def _stylize_folder(client: Client, args: argparse.Namespace) -> int:
    if args.output is None or args.output.is_file():
        raise UsageError("a folder of clips needs -o OUT_FOLDER")
    try:
        plan = plan_folder(args.source, args.output)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    for clip in plan.skipped:
        _say(f"{clip.name}: already done, skipped")
    run = FolderRun(
        client, plan, args.style, args.style_image, strength=args.strength, in_flight=args.jobs
    )
    try:
        report = run.run(log=_say)
    except KeyboardInterrupt:
        cancel_jobs(args, list(run.in_flight_jobs))
        return EXIT_INTERRUPTED
    _say(f"{len(report.done)} done, {len(plan.skipped)} skipped, {len(report.failed)} failed")
    return EXIT_REFUSED if report.failed else EXIT_OK


def cmd_stylize(client: Client, args: argparse.Namespace) -> int:
    if (args.style is None) == (args.style_image is None):
        raise UsageError("give one of --style NAME or --style-image PAINTING")
    if not 0.0 < args.strength <= 1.0:
        raise UsageError(f"--strength must be above 0 and at most 1, not {args.strength}")
    if args.source.is_dir():
        return _stylize_folder(client, args)
    return _stylize_one(client, args)


def _training_set(args: argparse.Namespace) -> tuple[Clips | None, Path | None]:
    """(clips, None) from the folder and --clips, or (None, archive) for a ZIP."""
    source: Path | None = args.source
    if source is not None and source.is_file() and source.suffix.lower() == ".zip":
        if args.clips:
            raise UsageError("give a ZIP archive or --clips, not both")
        return None, source
    clips: Clips = {}
    try:
        if source is not None:
            add_clips(clips, clips_from_folder(source))
        add_clips(clips, clips_from_pairs(args.clips or []))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if not clips:
        raise UsageError("give a folder of <label>/<clip> folders, a ZIP of them, or --clips")
    return clips, None


def cmd_teach(client: Client, args: argparse.Namespace) -> int:
    clips, archive = _training_set(args)
    with uploading(args.name) as bar:
        job = client.teach(args.name, clips=clips, archive=archive, on_upload=bar)
    if not follow(args, job, job.name):
        return EXIT_INTERRUPTED
    entry = job.classifier()
    print(json.dumps(entry.to_json(), indent=2) if args.json else classifier_table(entry))
    return EXIT_OK


def cmd_classifier_show(client: Client, args: argparse.Namespace) -> int:
    entry = client.classifiers.get(args.name)
    print(json.dumps(entry.to_json(), indent=2) if args.json else classifier_table(entry))
    return EXIT_OK


def cmd_classifier_delete(client: Client, args: argparse.Namespace) -> int:
    entry = client.classifiers.delete(args.name)
    _say(f"classifier {entry.name} deleted")
    return EXIT_OK


def _add_teach_commands(commands: argparse._SubParsersAction) -> None:
    teach = commands.add_parser(
        "teach",
        help="teach a new classifier from labelled clips (at least 2 labels x 3 clips)",
        description="Teach a classifier NAME from your clips, follow the job, and print its "
        "cross-validated accuracy. Then: actionstyle classify CLIP --model NAME.",
    )
    teach.add_argument(
        "name", metavar="NAME", help="the new classifier's name (letters, digits, _ and -)"
    )
    teach.add_argument(
        "source",
        type=Path,
        nargs="?",
        metavar="DIR",
        help="a folder holding one folder of clips per label (<label>/<clip>), or a ZIP of them",
    )
    teach.add_argument(
        "--clips",
        nargs="+",
        action="extend",
        metavar="LABEL=PATH",
        help="clips by label; a PATH may be a clip or a folder of clips (repeatable)",
    )
    teach.add_argument("--json", action="store_true", help="print the classifier as JSON")
    teach.set_defaults(func=cmd_teach)

    classifiers = commands.add_parser("classifiers", help="show or delete a classifier you taught")
    actions = classifiers.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="its labels, clips and cross-validated accuracy")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="print the classifier as JSON")
    show.set_defaults(func=cmd_classifier_show)
    delete = actions.add_parser("delete", help="delete it for good")
    delete.add_argument("name")
    delete.set_defaults(func=cmd_classifier_delete)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="actionstyle",
        description="Classify actions in video clips, restyle clips and teach new actions "
        "(the actionstyle service).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", help=f"the service (default: ${URL_VARIABLE} or {DEFAULT_URL})")
    parser.add_argument("--api-key", help=f"the API key (default: ${KEY_VARIABLE})")
    parser.add_argument(
        "--retries", type=int, default=4, help="retries on 408, 429, 503 and lost connections (4)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    classify = commands.add_parser(
        "classify", help="recognise the action in a clip, several clips or folders of them"
    )
    classify.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="a video (MP4, MOV, AVI, 3GP, MPEG, MTS, WMV, WebM, MKV) or a folder of them; "
        "with more than one, a row (or a JSON line) per clip",
    )
    classify.add_argument(
        "--model", help="a classifier from `actionstyle models`, or one you taught"
    )
    classify.add_argument("--top-k", type=int, help="labels to show (server default 5)")
    classify.add_argument("--segments", action="store_true", help="also answer per time window")
    classify.add_argument("--window-s", type=float, help="window length for --segments (2)")
    classify.add_argument(
        "--json", action="store_true", help="print the answer as JSON (JSON lines for many)"
    )
    classify.set_defaults(func=cmd_classify)

    stylize = commands.add_parser("stylize", help="restyle a clip, or every clip of a folder")
    stylize.add_argument("source", type=Path, help="a video, or a folder of videos")
    stylize.add_argument("--style", help="a style name from `actionstyle models`")
    stylize.add_argument("--style-image", type=Path, help="your own painting as the style")
    stylize.add_argument(
        "--strength",
        type=float,
        default=1.0,
        help="how strongly the style applies, above 0 up to 1: 0.5 is half-way to the "
        "original (default 1, the full style)",
    )
    stylize.add_argument(
        "-o", "--output", type=Path, help="the MP4 to write (a folder for a folder of clips)"
    )
    stylize.add_argument(
        "--jobs", type=int, default=2, help="folder: jobs in flight at once (default 2)"
    )
    stylize.set_defaults(func=cmd_stylize)

    models = commands.add_parser("models", help="list the classifiers and styles")
    models.add_argument("--json", action="store_true", help="print the answer as JSON")
    models.set_defaults(func=cmd_models)
    _add_teach_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.retries < 0 or getattr(args, "jobs", 1) < 1:
        parser.error("--retries must be 0 or more, --jobs 1 or more")
    try:
        with make_client(args) as client:
            return args.func(client, args)
    except (UsageError, FileNotFoundError) as exc:
        _say(str(exc))
        return EXIT_USAGE
    except ActionStyleError as exc:
        _say(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
