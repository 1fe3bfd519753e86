package main

// Tests of the simulated SIP trunk.

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSIPTrunkACL(t *testing.T) {
	k := newSIPTestPKI(t)
	r := startSIPTest(t, k, k.identity(t, 1, true))
	require.NoError(t, r.trunkCheck(testContext(t)))
	require.NoError(t, r.trunkCheck(testContext(t)), "again, with a fresh peer")
}
