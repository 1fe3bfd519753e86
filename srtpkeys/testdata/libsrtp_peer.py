# libsrtp_peer.py: one direction of an SRTP stream in libsrtp, for
# srtpkeys/libsrtp_test.go. Written for this project; it uses Debian's
# python3-pylibsrtp (a CFFI wrapper around libsrtp2) and must be run with
# /usr/bin/python3, whose dist-packages hold it.
#
# Usage: /usr/bin/python3 libsrtp_peer.py PROFILE protect|unprotect
#
# PROFILE is a pylibsrtp profile without its SRTP_PROFILE_ prefix, such as
# AES128_CM_SHA1_80. The first line on stdin is the master key and salt
# (key||salt) in hex; it is read from stdin rather than the command line so
# that it does not show in the process list. Every further line is
# "rtp HEX" or "rtcp HEX", a packet to protect (any outbound SSRC) or to
# unprotect (any inbound SSRC). For each, one line is written back:
# "ok HEX" with the result, or "err MESSAGE" when libsrtp refuses the
# packet (a failed authentication, a replay). End of input ends the peer.
import sys

import pylibsrtp


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in ("protect", "unprotect"):
        sys.exit("usage: libsrtp_peer.py PROFILE protect|unprotect")
    profile = getattr(pylibsrtp.Policy, "SRTP_PROFILE_" + sys.argv[1])
    protect = sys.argv[2] == "protect"
    key = bytes.fromhex(sys.stdin.readline().strip())
    ssrc_type = pylibsrtp.Policy.SSRC_ANY_OUTBOUND if protect else pylibsrtp.Policy.SSRC_ANY_INBOUND
    session = pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=ssrc_type, srtp_profile=profile))
    ops = {
        "rtp": session.protect if protect else session.unprotect,
        "rtcp": session.protect_rtcp if protect else session.unprotect_rtcp,
    }
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        kind, _, packet = line.strip().partition(" ")
        try:
            out = "ok " + ops[kind](bytes.fromhex(packet)).hex()
        except (pylibsrtp.Error, ValueError, KeyError) as e:
            out = "err " + str(e)
        print(out, flush=True)


main()
