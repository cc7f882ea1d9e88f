"""ftps7: an FTPS server for Linux with the security model of IIS FTP 7.5."""

__version__ = "0.1.0"
