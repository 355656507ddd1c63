package config

// For the tests of package config_test, which may import lnoded (this
// package's tests may not: lnoded imports config).

// FakeTable is the fake ipvsadm's table.
type FakeTable = fakeTable

// RunLdirectordStart is runLdirectordStart.
var RunLdirectordStart = runLdirectordStart

// LdirectordPath is where Debian's ldirectord is.
const LdirectordPath = ldirectordPath
