"""The suite's calendar: the one moment every test starts at, whatever day the suite runs.

`tests/conftest.py` freezes the clock at `NOW` for every test (time-machine, ticking from
there), so `timezone.now()`, `timezone.localdate()` and `date.today()` in the code under
test agree with the literal dates the tests build from `ON`. A test that needs another
moment says so with `@pytest.mark.time_machine("2027-01-04 09:00Z")` or moves the
`clock` fixture (`clock.move_to(...)`, `clock.shift(...)`); a test that talks to other
processes on the real clock (Celery workers, a subprocess) is marked `real_clock` and must
derive every date it uses from `timezone.localdate()` at run time.
"""

import datetime as dt

ON = dt.date(2026, 11, 23)  # a Monday; US Thanksgiving is Thursday 2026-11-26
NOW = dt.datetime(2026, 11, 23, 16, 0, tzinfo=dt.UTC)  # 10:00 in Chicago, 17:00 in Paris
