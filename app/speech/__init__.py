"""Spoken answers: text to speech, the voices Daybook can use, and saying answers out loud."""
