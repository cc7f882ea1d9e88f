# The twistd dropin: one ServiceMaker and nothing else. twisted/plugins is not a
# package here (no __init__.py): it is merged into Twisted's own plugin folder.
from twisted.application.service import ServiceMaker

ftps7 = ServiceMaker(
    "ftps7",
    "ftps7.tap",
    "An FTPS server with the security model of IIS FTP 7.5.",
    "ftps7",
)
