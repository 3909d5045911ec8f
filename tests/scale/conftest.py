"""The real Asterisk, its AMI session and sipp phones, shared with the telephony tests."""

from tests.telephony.conftest import ami, pbx, sipp_binary, start_sipp  # noqa: F401  (fixtures)
