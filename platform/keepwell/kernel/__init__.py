"""The kernel: values every area shares (money, periods, ids, time, text) and the one tree of
errors. It imports nothing of Keepwell's."""
