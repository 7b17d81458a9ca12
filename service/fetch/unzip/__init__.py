"""A zip's wanted member, unpacked safely: after the download, or while it arrives.

- :mod:`~service.fetch.unzip.members`: which members to take; zip-slip and declared sizes;
- :mod:`~service.fetch.unzip.inflate`: the :class:`Inflater` both ways share, holding the
  zip-bomb limits on the bytes actually inflated;
- :mod:`~service.fetch.unzip.extract`: :func:`extract_member`, from the downloaded archive;
- :mod:`~service.fetch.unzip.follow`: :class:`Unzipper`, which inflates while the download
  runs and is adopted only if the central directory agrees.
"""

from service.fetch.unzip.extract import extract_member, extracted
from service.fetch.unzip.follow import Unzipper
from service.fetch.unzip.members import ArchiveLimits

__all__ = ["ArchiveLimits", "Unzipper", "extract_member", "extracted"]
