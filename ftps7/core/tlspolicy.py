"""IIS's SSL channel policies as pure decisions.

``controlChannelPolicy`` × ``dataChannelPolicy`` (seeds/iis-config-ftpserver-
security-ssl.md) become four questions the protocol asks at the right moment:

- `control_refusal`: may this command run on the control channel as it is now?
  Asked for every command, before the command runs (SslRequire: nothing but the
  negotiation commands before AUTH; SslRequireCredentialsOnly: USER and PASS only
  over TLS).
- `prot_refusal`: may the client ask for this data protection level?
- `data_refusal`: may a transfer start with the current PROT? Asked on the
  transfer command, as RFC 4217 §10.2 says, never on PASV/PORT.
- `ccc_refusal`: may the client clear the control channel (RFC 4217 §5)?

Each returns None when allowed or the reply to refuse with.
"""

from __future__ import annotations

from ftps7.config.model import ControlChannelPolicy, DataChannelPolicy
from ftps7.core.replies import R

#: Commands a client may send on a clear channel even when SslRequire is in force:
#: what it needs to discover and negotiate TLS, pick a virtual host, or leave.
#: PBSZ, PROT and CCC pass so that their own RFC 4217 replies (503 before AUTH,
#: 533 for CCC on an unprotected channel) name the real problem.
NEGOTIATION_COMMANDS = frozenset(
    {"AUTH", "FEAT", "HOST", "QUIT", "NOOP", "SYST", "HELP", "CLNT", "OPTS", "PBSZ", "PROT",
     "CCC"}
)

#: Commands that carry credentials (SslRequireCredentialsOnly protects exactly these).
CREDENTIAL_COMMANDS = frozenset({"USER", "PASS", "ACCT"})


def control_refusal(policy: ControlChannelPolicy, command: str, protected: bool) -> R | None:
    """Whether `command` is refused because the control channel is not protected."""
    if protected or policy is ControlChannelPolicy.SSL_ALLOW:
        return None
    if policy is ControlChannelPolicy.SSL_REQUIRE:
        return None if command in NEGOTIATION_COMMANDS else R.POLICY_REQUIRES_SSL
    # SslRequireCredentialsOnly
    return R.POLICY_REQUIRES_SSL if command in CREDENTIAL_COMMANDS else None


def prot_refusal(policy: DataChannelPolicy, private: bool) -> R | None:
    """PROT P under SslDeny is refused at once (RFC 2228 §8.2: 534 for policy).

    PROT C under SslRequire is accepted, as IIS does, and the transfer command
    that follows is refused; that way the reply names the real problem at the
    moment it matters.
    """
    if private and policy is DataChannelPolicy.SSL_DENY:
        return R.POLICY_DENIES_SSL
    return None


def data_refusal(policy: DataChannelPolicy, private: bool) -> R | None:
    """Whether a transfer may start with the current protection level."""
    if policy is DataChannelPolicy.SSL_REQUIRE and not private:
        return R.POLICY_REQUIRES_SSL
    if policy is DataChannelPolicy.SSL_DENY and private:
        return R.POLICY_DENIES_SSL
    return None


def ccc_refusal(policy: ControlChannelPolicy, protected: bool, logged_in: bool) -> R | None:
    """CCC is allowed only where the policy permits a clear channel after logon.

    533 on an unprotected channel, 534 under SslRequire (RFC 4217 §5), and
    before logon (RFC 4217 §15.3: clearing before credentials would expose them)
    a 503 sequence error.
    """
    if not protected:
        return R.CCC_NOT_PROTECTED
    if policy is ControlChannelPolicy.SSL_REQUIRE:
        return R.POLICY_DENIES_CCC
    if not logged_in:
        return R.BAD_SEQUENCE
    return None
