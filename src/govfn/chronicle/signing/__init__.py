"""Signed checkpoints: C2SP signed notes with Ed25519 (`note`), the tlog-checkpoint body
(`checkpoint`), checking a log against the notes it signed (`witness`), and signing on a schedule
while serving (`publisher`)."""
