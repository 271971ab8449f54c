"""A Student with only the Protocol's methods (no snapshot, no preferences, no sampling): what a user's own
minimal student looks like, wrapping a real HFStudent."""

from __future__ import annotations


class PlainStudent:
    def __init__(self, inner):
        self.inner = inner

    def train(self, examples, *, seed):
        return self.inner.train(examples, seed=seed)

    def answer(self, questions):
        return self.inner.answer(questions)

    def reset(self):
        self.inner.reset()

    def save(self, directory):
        self.inner.save(directory)

    def load(self, directory):
        self.inner.load(directory)

    def num_parameters(self):
        return self.inner.num_parameters()
