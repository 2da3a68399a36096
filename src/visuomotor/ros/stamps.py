"""builtin_interfaces/Time <-> integer nanoseconds."""

from builtin_interfaces.msg import Time

_NS_PER_S = 1_000_000_000


def stamp_to_ns(stamp: Time) -> int:
    """Nanoseconds represented by a header stamp."""
    return int(stamp.sec) * _NS_PER_S + int(stamp.nanosec)


def ns_to_stamp(nanoseconds: int) -> Time:
    """A header stamp for `nanoseconds` (>= 0)."""
    if nanoseconds < 0:
        raise ValueError(f'a ROS stamp cannot be negative, got {nanoseconds} ns')
    seconds, remainder = divmod(int(nanoseconds), _NS_PER_S)
    return Time(sec=seconds, nanosec=remainder)
