"""Grounding checks found wanting by a real local teacher (Qwen2.5-Coder-1.5B): am/pm and bare digits."""
from needle.data.grounding import is_grounded
from needle.data.teacher_client import reply_budget


def test_clock_times_respect_am_and_pm():
    assert is_grounded("20:00", "wake me at 8 pm") and is_grounded("08:00", "wake me at 8 am")
    assert not is_grounded("08:00", "wake me at 8 pm") and not is_grounded("20:00", "wake me at 8 am")
    assert not is_grounded("10:30", "hold it until 10:30 pm") and is_grounded("22:30", "hold it until 10:30 PM")
    assert is_grounded("07:30", "the alarm at 07:30") and is_grounded("19:30", "at 7:30pm")


def test_digit_strings_need_whole_numbers():
    assert not is_grounded("3", "give it rating 13") and is_grounded("13", "give it rating 13")
    assert is_grounded("346170", "request id 346170, please")


def test_replies_are_capped_by_batch_size():
    assert reply_budget(25) > reply_budget(5) >= 2000
