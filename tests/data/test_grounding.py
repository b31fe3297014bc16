"""Grounding checks found wanting by a real local teacher (Qwen2.5-Coder-1.5B): am/pm and bare digits."""
from needle.data.grounding import is_grounded, meridiem_fixed
from needle.data.teacher_client import reply_budget


def test_clock_times_respect_am_and_pm():
    assert is_grounded("20:00", "wake me at 8 pm") and is_grounded("08:00", "wake me at 8 am")
    assert not is_grounded("08:00", "wake me at 8 pm") and not is_grounded("20:00", "wake me at 8 am")
    assert not is_grounded("10:30", "hold it until 10:30 pm") and is_grounded("22:30", "hold it until 10:30 PM")
    assert is_grounded("07:30", "the alarm at 07:30") and is_grounded("19:30", "at 7:30pm")


def test_the_other_half_of_the_day_is_set_to_the_half_the_request_names():
    assert meridiem_fixed("10:30", "for time 10:30p.m.; notes") == "22:30"
    assert meridiem_fixed("17:15", "time 5:15 a.m., then") == "05:15"
    assert meridiem_fixed("10:00", "time of day = 10p.m.") == "22:00"
    assert meridiem_fixed("12:45", "from 12:45AM") == "00:45"
    assert meridiem_fixed("5:15:00", "at 5:15 pm") == "17:15:00"  # the value's own form kept
    assert meridiem_fixed("22:30", "until 10:30 pm") is None  # already the request's
    assert meridiem_fixed("10:30", "at 10:30") is None and meridiem_fixed("tea", "at 10:30 pm") is None
    assert meridiem_fixed("10:30", "at 10:30 PM or 10:30 AM") is None  # both halves named: the value is one of them
    assert is_grounded(meridiem_fixed("10:30", "hold it until 10:30 pm"), "hold it until 10:30 pm")


def test_digit_strings_need_whole_numbers():
    assert not is_grounded("3", "give it rating 13") and is_grounded("13", "give it rating 13")
    assert is_grounded("346170", "request id 346170, please")


def test_replies_are_capped_by_batch_size():
    assert reply_budget(25) > reply_budget(5) >= 2000


def test_dates_a_calendar_does_not_have_are_not_grounded():
    assert is_grounded("2024-03-05", "book it for March 5th") and is_grounded("2024-03-05", "on 2024-03-05")
    # months 13 and 00 and day 00 are model mistakes; they used to crash the check (month 13) or read as December
    assert not is_grounded("2024-13-05", "book it for March 5th, 13 guests")
    assert not is_grounded("2024-00-05", "book it for December 5th") and not is_grounded("2024-03-00", "in March")
