// Package wire encodes and decodes Linux-HA Heartbeat 3.0.6 messages
// (cluster-glue's ha_msg) in both wire formats and computes and verifies
// their authentication strings.
//
// A message is an ordered list of typed fields. Order matters: the
// in-message auth field signs the fields in order, so the codec never
// reorders them. Two framings exist:
//
//   - netstring ("###\n" … "%%%\n" + trailing auth netstring), which
//     Heartbeat 3.0.6 always sends;
//   - classic (">>>\n" name=value lines "<<<\n"), which receivers still
//     accept and which carries its authentication in the "auth" field.
//
// Every length in the input is bounded (MaxMessageSize, MaxDepth,
// MaxFields, MaxListElems); malformed input yields an error, never a panic.
package wire
