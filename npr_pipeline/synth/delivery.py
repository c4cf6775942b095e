"""The synthetic inbox delivered month by month, as the register receives it.

``npr synth`` writes a whole year at once; a real register runs intake as files arrive. Per
delivery month (a daily file's delivery time in its name; a monthly file's data month) the
files go into their own folder, so intake can take them in the order they were delivered: in
particular each unit's period closing is then compared with a state that holds nothing the
unit sent after it (docs/decisions/daily-route.md, "Known limits").
"""

from __future__ import annotations

import itertools
import re
import shutil
from pathlib import Path

DAILY_NAME = re.compile(r"(\d+)_(\d{6})\d{2}T\d{6}_[a-z]+_(\d+)\.xml")
MONTHLY_NAME = re.compile(r"(\d+)_(\d{4})-(\d{2})_[a-z]+\.xml")
REPORT_NAME = re.compile(r"(\d+)_[a-z]+_\d{4}-\d{2}-\d{2}_(\d{4})-(\d{2})-\d{2}\.xml")


def delivery_month(path: Path) -> str:
    """``YYYYMM`` the file was delivered in (a monthly or report file: the month its data end;
    a report is written the evening of its period's last day)."""
    daily = DAILY_NAME.fullmatch(path.name)
    if daily:
        return daily[2]
    monthly = MONTHLY_NAME.fullmatch(path.name) or REPORT_NAME.fullmatch(path.name)
    if monthly is None:
        raise ValueError(f"not a file name npr synth writes: {path.name}")
    return monthly[2] + monthly[3]


def split_by_delivery_month(inbox: Path, out: Path) -> list[Path]:
    """Copy the inbox's files into ``out/inbox-YYYYMM`` folders; the folders, oldest first."""
    folders = []
    files = sorted((p for p in inbox.iterdir() if p.is_file()), key=delivery_month)
    for month, group in itertools.groupby(files, key=delivery_month):
        folder = out / f"inbox-{month}"
        folder.mkdir(parents=True, exist_ok=True)
        for path in group:
            shutil.copy2(path, folder / path.name)
        folders.append(folder)
    return folders
