"""Template filters for audio times and durations."""

from django import template

from transcription import exports

register = template.Library()


@register.filter
def clock(seconds: float | None) -> str:
    """Seconds into a session as ``m:ss.s`` (``1:02.5``)."""
    total = max(0.0, float(seconds or 0.0))
    minutes, rest = divmod(total, 60)
    return f"{int(minutes)}:{rest:04.1f}"


@register.filter
def channel_label(channel: int | None) -> str:
    """A multichannel session's channel as people count them: ``Channel 1`` for channel 0."""
    return exports.channel_label(channel)


@register.filter
def duration(seconds: float | None) -> str:
    """A length of audio for people: ``12.3 s``, ``4 min 05 s``, ``2 h 07 min``."""
    total = max(0.0, float(seconds or 0.0))
    if total < 60:
        return f"{total:.1f} s"
    whole = round(total)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s"
