"""The download response: headers from a file wrapper, a streamed body."""

from __future__ import annotations

from ._cache import cache_directives as cache_directives
from ._cache import no_less_private as no_less_private
from ._disposition import content_disposition as content_disposition
from ._disposition import MAX_NAME_LENGTH as MAX_NAME_LENGTH
from ._download import DownloadResponse as DownloadResponse
from ._download import REMADE_OPTIONS as REMADE_OPTIONS
from ._media import codec_charset as codec_charset
from ._media import DEFAULT_CONTENT_SECURITY_POLICY as DEFAULT_CONTENT_SECURITY_POLICY
from ._media import is_active_type as is_active_type
from ._media import media_type_charset as media_type_charset
from ._media import set_content_security_policy as set_content_security_policy
from ._media import valid_media_type as valid_media_type
from ._not_modified import NotModifiedResponse as NotModifiedResponse
from ._representation import content_type_and_encoding as content_type_and_encoding
from ._representation import guess_type as guess_type
from ._representation import http_date as http_date
from ._representation import representation as representation
from ._representation import validator_headers as validator_headers
from ._server import close_connection as close_connection
from ._server import gunicorn_response as gunicorn_response
