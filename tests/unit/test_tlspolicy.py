"""The IIS SSL channel policies as a pure table (ftps7.core.tlspolicy).

Every controlChannelPolicy × dataChannelPolicy combination is checked against
the expected decision, written out explicitly rather than derived, so that a
change to the policy module has to change this table too (docs/policies.md
documents the same table).
"""

from __future__ import annotations

import itertools

import pytest

from ftps7.config.model import ControlChannelPolicy, DataChannelPolicy
from ftps7.core import tlspolicy
from ftps7.core.commands import COMMANDS
from ftps7.core.replies import R

ALLOW = ControlChannelPolicy.SSL_ALLOW
REQUIRE = ControlChannelPolicy.SSL_REQUIRE
CREDENTIALS = ControlChannelPolicy.SSL_REQUIRE_CREDENTIALS_ONLY
D_ALLOW = DataChannelPolicy.SSL_ALLOW
D_REQUIRE = DataChannelPolicy.SSL_REQUIRE
D_DENY = DataChannelPolicy.SSL_DENY

ALL_COMMANDS = sorted(COMMANDS)
#: What a client must be able to send on a clear channel under SslRequire:
#: discover and negotiate TLS, choose a virtual host, pass the time, or leave.
NEGOTIATION = {"AUTH", "FEAT", "HOST", "QUIT", "NOOP", "SYST", "HELP", "CLNT", "OPTS",
               "PBSZ", "PROT", "CCC"}


# ----------------------------------------------------------- control channel
@pytest.mark.parametrize("command", ALL_COMMANDS)
@pytest.mark.parametrize("policy", list(ControlChannelPolicy))
def test_nothing_is_refused_on_a_protected_control_channel(
    policy: ControlChannelPolicy, command: str
) -> None:
    assert tlspolicy.control_refusal(policy, command, True) is None


@pytest.mark.parametrize("command", ALL_COMMANDS)
def test_ssl_allow_accepts_every_command_in_the_clear(command: str) -> None:
    assert tlspolicy.control_refusal(ALLOW, command, False) is None


@pytest.mark.parametrize("command", ALL_COMMANDS)
def test_ssl_require_accepts_only_negotiation_commands_in_the_clear(command: str) -> None:
    expected = None if command in NEGOTIATION else R.POLICY_REQUIRES_SSL
    assert tlspolicy.control_refusal(REQUIRE, command, False) is expected


@pytest.mark.parametrize("command", ALL_COMMANDS)
def test_credentials_only_protects_exactly_the_credential_commands(command: str) -> None:
    expected = R.POLICY_REQUIRES_SSL if command in {"USER", "PASS", "ACCT"} else None
    assert tlspolicy.control_refusal(CREDENTIALS, command, False) is expected


def test_the_policy_refusal_is_the_iis_reply() -> None:
    assert R.POLICY_REQUIRES_SSL.code == 534
    assert R.POLICY_REQUIRES_SSL.template == "Policy requires SSL."


def test_negotiation_and_credential_sets_are_disjoint_and_known() -> None:
    assert not tlspolicy.NEGOTIATION_COMMANDS & tlspolicy.CREDENTIAL_COMMANDS
    assert set(COMMANDS) >= tlspolicy.NEGOTIATION_COMMANDS
    assert set(COMMANDS) >= tlspolicy.CREDENTIAL_COMMANDS
    assert set(tlspolicy.NEGOTIATION_COMMANDS) == NEGOTIATION


# --------------------------------------------------------------- data channel
#: (dataChannelPolicy, PROT P?) -> reply to PROT, reply to a transfer command.
DATA_TABLE: dict[tuple[DataChannelPolicy, bool], tuple[R | None, R | None]] = {
    (D_ALLOW, False): (None, None),
    (D_ALLOW, True): (None, None),
    # PROT C is accepted under SslRequire; the transfer command is what fails
    # (RFC 4217 §10.2 places the check there, IIS answers 534 Policy requires SSL.).
    (D_REQUIRE, False): (None, R.POLICY_REQUIRES_SSL),
    (D_REQUIRE, True): (None, None),
    # SslDeny refuses PROT P at once; a session that is private anyway (AUTH SSL,
    # implicit FTPS) is refused at the transfer until it sends PROT C.
    (D_DENY, False): (None, None),
    (D_DENY, True): (R.POLICY_DENIES_SSL, R.POLICY_DENIES_SSL),
}


@pytest.mark.parametrize(
    ("policy", "private"), list(itertools.product(DataChannelPolicy, (False, True)))
)
def test_data_channel_table(policy: DataChannelPolicy, private: bool) -> None:
    prot, transfer = DATA_TABLE[(policy, private)]
    assert tlspolicy.prot_refusal(policy, private) is prot
    assert tlspolicy.data_refusal(policy, private) is transfer


def test_data_refusals_are_534() -> None:
    for prot, transfer in DATA_TABLE.values():
        for reply in (prot, transfer):
            assert reply is None or reply.code == 534


# ------------------------------------------------------------------------ CCC
@pytest.mark.parametrize("policy", list(ControlChannelPolicy))
@pytest.mark.parametrize("logged_in", [False, True])
def test_ccc_on_a_clear_channel_is_533(policy: ControlChannelPolicy, logged_in: bool) -> None:
    reply = tlspolicy.ccc_refusal(policy, False, logged_in)
    assert reply is R.CCC_NOT_PROTECTED and reply.code == 533


@pytest.mark.parametrize("logged_in", [False, True])
def test_ccc_under_ssl_require_is_534(logged_in: bool) -> None:
    reply = tlspolicy.ccc_refusal(REQUIRE, True, logged_in)
    assert reply is R.POLICY_DENIES_CCC and reply.code == 534


@pytest.mark.parametrize("policy", [ALLOW, CREDENTIALS])
def test_ccc_before_logon_is_503(policy: ControlChannelPolicy) -> None:
    reply = tlspolicy.ccc_refusal(policy, True, False)
    assert reply is R.BAD_SEQUENCE and reply.code == 503


@pytest.mark.parametrize("policy", [ALLOW, CREDENTIALS])
def test_ccc_after_logon_is_allowed_where_a_clear_channel_is(policy: ControlChannelPolicy) -> None:
    assert tlspolicy.ccc_refusal(policy, True, True) is None


# ------------------------------------------------------------ all nine pairs
def _walk(control: ControlChannelPolicy, data: DataChannelPolicy) -> dict[str, R | None]:
    """The decisions a typical session meets, in the order it meets them."""
    return {
        "clear USER": tlspolicy.control_refusal(control, "USER", False),
        "clear LIST": tlspolicy.control_refusal(control, "LIST", False),
        "PROT P": tlspolicy.prot_refusal(data, True),
        "PROT C": tlspolicy.prot_refusal(data, False),
        "LIST under C": tlspolicy.data_refusal(data, False),
        "LIST under P": tlspolicy.data_refusal(data, True),
        "CCC after logon": tlspolicy.ccc_refusal(control, True, True),
    }


_CONTROL_EXPECT: dict[ControlChannelPolicy, dict[str, R | None]] = {
    ALLOW: {"clear USER": None, "clear LIST": None, "CCC after logon": None},
    REQUIRE: {
        "clear USER": R.POLICY_REQUIRES_SSL,
        "clear LIST": R.POLICY_REQUIRES_SSL,
        "CCC after logon": R.POLICY_DENIES_CCC,
    },
    CREDENTIALS: {"clear USER": R.POLICY_REQUIRES_SSL, "clear LIST": None, "CCC after logon": None},
}
_DATA_EXPECT: dict[DataChannelPolicy, dict[str, R | None]] = {
    D_ALLOW: {"PROT P": None, "PROT C": None, "LIST under C": None, "LIST under P": None},
    D_REQUIRE: {
        "PROT P": None,
        "PROT C": None,
        "LIST under C": R.POLICY_REQUIRES_SSL,
        "LIST under P": None,
    },
    D_DENY: {
        "PROT P": R.POLICY_DENIES_SSL,
        "PROT C": None,
        "LIST under C": None,
        "LIST under P": R.POLICY_DENIES_SSL,
    },
}


@pytest.mark.parametrize(
    ("control", "data"), list(itertools.product(ControlChannelPolicy, DataChannelPolicy))
)
def test_every_combination(control: ControlChannelPolicy, data: DataChannelPolicy) -> None:
    assert _walk(control, data) == {**_CONTROL_EXPECT[control], **_DATA_EXPECT[data]}
