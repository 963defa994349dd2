"""
The production Content-Security-Policy and Permissions-Policy (used by production.py, and by the browser
test that loads every page under them).
"""

from csp.constants import NONCE, NONE, SELF

# Every page's scripts are files from our origin, or carry the request's nonce; no inline style
# attributes (the cockpit and scan pages use classes). QR codes are inline SVG; Swagger UI and the
# admin load their assets from STATIC_URL.
PRODUCTION_CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# The cockpit's QR scanner on the staff page needs the camera of this origin; nothing else is used.
PRODUCTION_PERMISSIONS_POLICY = {
    "accelerometer": [],
    "autoplay": [],
    "camera": ["self"],
    "display-capture": [],
    "encrypted-media": [],
    "fullscreen": ["self"],
    "geolocation": [],
    "gyroscope": [],
    "magnetometer": [],
    "microphone": [],
    "midi": [],
    "payment": [],
    "usb": [],
}
