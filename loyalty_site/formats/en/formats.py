"""
Date formats for English (settings FORMAT_MODULE_PATH): Django's own, with the time zone after every time of
day, so a date and time on any admin page says which zone it is in ("Nov. 30, 2026, 6:13 p.m. UTC").
"""

DATETIME_FORMAT = "N j, Y, P T"
SHORT_DATETIME_FORMAT = "m/d/Y P T"
TIME_FORMAT = "P T"
