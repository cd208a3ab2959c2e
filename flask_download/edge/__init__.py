"""Links that nginx or a CDN checks, so that downloads never reach Python.

A link made here carries its own proof: an expiry and a signature that the
web server or the CDN verifies on each request, with a secret (nginx) or a
public key (CloudFront) it was given once. The application only hands the
links out.

- :func:`nginx_secure_link` makes links for nginx's
  ``ngx_http_secure_link_module``; :func:`nginx_secure_url_for` builds them
  with :func:`flask.url_for` and the app's ``DOWNLOAD_NGINX_SECURE_LINK_SECRET``,
  and :func:`nginx_secure_link_required` checks them in Python where no
  nginx stands in front (development, tests).
- :func:`cloudfront_signed_url` and :func:`cloudfront_signed_cookies` sign
  for Amazon CloudFront with botocore's ``CloudFrontSigner`` (extra
  ``Flask-Download[cdn]``).

What the edge checks, and what it cannot (revocation before expiry,
per-user rules), is described in the "Edge-verified links" documentation.
"""

from __future__ import annotations

from ._cloudfront import cloudfront_signed_cookies as cloudfront_signed_cookies
from ._cloudfront import cloudfront_signed_url as cloudfront_signed_url
from ._nginx import _nginx_address as _nginx_address
from ._nginx import _nginx_md5 as _nginx_md5
from ._nginx import EXPIRES_PARAM as EXPIRES_PARAM
from ._nginx import Expiry as Expiry
from ._nginx import MD5_PARAM as MD5_PARAM
from ._nginx import MIN_SECRET_LENGTH as MIN_SECRET_LENGTH
from ._nginx import nginx_secure_link as nginx_secure_link
from ._nginx import nginx_secure_url_for as nginx_secure_url_for
from ._nginx import SECRET_KEY_CONFIG as SECRET_KEY_CONFIG
from ._nginx import validate_nginx_secret as validate_nginx_secret
from ._nginx import verify_nginx_secure_link as verify_nginx_secure_link
from ._required import check_nginx_secure_link as check_nginx_secure_link
from ._required import F as F
from ._required import nginx_secure_link_required as nginx_secure_link_required

__all__ = [
    "check_nginx_secure_link",
    "cloudfront_signed_cookies",
    "cloudfront_signed_url",
    "nginx_secure_link",
    "nginx_secure_link_required",
    "nginx_secure_url_for",
    "verify_nginx_secure_link",
]
