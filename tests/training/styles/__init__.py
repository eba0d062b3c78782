"""Tests of style training: CycleGAN, the teacher, students and their metrics."""
