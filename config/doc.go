// Package config is directord's one configuration model and its two front
// ends.
//
// Every feature of the daemon reads a *Config; no other package reads a
// configuration file format. The front ends are:
//
//   - LoadHADir: a Heartbeat directory (/etc/ha.d) — ha.cf, haresources,
//     authkeys, and the lnoded.cf (ldirectord.cf) files haresources names —
//     read with the heartbeat/hacf, heartbeat/haresources,
//     heartbeat/authkeys and lnoded/config parsers and mapped into the model.
//     Settings only directord has take their defaults.
//   - LoadYAML / ParseYAML: directord's own YAML schema (docs/configuration.md),
//     strict: an unknown key, a value of the wrong type, an anchor or alias,
//     or a second document is an error naming file:line.
//
// Both produce the same model for the same setup, with every default
// resolved as Heartbeat resolves it (the tests hold them to that), and both
// finish with Validate, which checks what no single file can: that a group's
// owner is a node, that this node is one, that timings make sense together,
// that a VIP or virtual service is defined once.
//
// Loading is all or nothing: on any error the loaders return a nil *Config
// and an ErrorList with every error found in every file, each naming
// file:line and what to do. Warnings (legal but probably wrong settings,
// settings directord ignores) are in Config.Warnings.
//
// MarshalYAML writes a model back in the YAML schema; `directord import`
// uses it to turn an /etc/ha.d directory into a YAML file.
package config
