"""Install at scale: `inv install` re-run time with 1 and with 100 fixed users.

Hashes are computed once, at `users.add`; a re-run only renders them, so the two medians should be
about equal (ratio near 1).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.common import emit, median, timed
from clearml_stack.users import User, hash_password, save_users
from tests.kit import new_kit


def rerun_median(user_count: int, runs: int) -> float:
    with tempfile.TemporaryDirectory(prefix="clearml-bench-") as tmp:
        k = new_kit(Path(tmp))
        k.inv("install")
        one_hash = hash_password("bench-password")  # computed once, as users.add would per user
        save_users(k.settings().users_file, [User(f"user{i:03d}", f"User {i}", one_hash) for i in range(user_count)])
        k.inv("install")  # renders the users once
        return median([timed(lambda: k.inv("install")) for _ in range(runs)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    one, hundred = rerun_median(1, args.runs), rerun_median(100, args.runs)
    emit({"bench": "install_scale", "runs": args.runs, "users_1_median_s": round(one, 4),
          "users_100_median_s": round(hundred, 4), "ratio": round(hundred / one, 2)})


if __name__ == "__main__":
    main()
