#!/bin/bash
# Usage (root, Debian heartbeat installed): OUT=/tmp/hbcap ./capture.sh; then copy $OUT/<method>/*.bin here.
# Capture what a real Heartbeat 3.0.6 node sends over ucast, once per auth method.
set -u
ip netns add hbA 2>/dev/null; ip netns add hbB 2>/dev/null
ip link add hb0 netns hbA type veth peer name hb0 netns hbB 2>/dev/null
ip -n hbA addr add 198.51.100.1/24 dev hb0 2>/dev/null; ip -n hbB addr add 198.51.100.2/24 dev hb0 2>/dev/null
ip -n hbA link set hb0 up; ip -n hbB link set hb0 up; ip -n hbA link set lo up; ip -n hbB link set lo up
for method in sha1 md5 crc; do
  d=${OUT:-/tmp/hbcap}/nodeA-$method; rm -rf $d; mkdir -p $d/etc $d/lib $d/run $d/log
  cp -a /etc/ha.d/. $d/etc/; cp -a /var/lib/heartbeat/. $d/lib/; cp -a /run/heartbeat $d/run/
  cat > $d/etc/ha.cf <<CF
logfile /var/log/ha-log
debugfile /var/log/ha-debug
keepalive 1
warntime 3
deadtime 5
initdead 10
udpport 694
ucast hb0 198.51.100.2
auto_failback on
node nodeA
node nodeB
CF
  if [ $method = crc ]; then printf 'auth 3\n3 crc\n' > $d/etc/authkeys; else printf "auth 2\n2 $method test-key-$method\n" > $d/etc/authkeys; fi
  chmod 600 $d/etc/authkeys
  echo "nodeA 203.0.113.10" > $d/etc/haresources
  mkdir -p ${OUT:-/tmp/hbcap}/$method; rm -f ${OUT:-/tmp/hbcap}/$method/*
  ip netns exec hbB python3 -c '
import socket,sys,time
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("198.51.100.2",694)); s.settimeout(1)
end=time.time()+16; n=0
while time.time()<end:
    try: b=s.recv(300000)
    except socket.timeout: continue
    open(sys.argv[1]+"/%03d.bin"%n,"wb").write(b); n+=1
' ${OUT:-/tmp/hbcap}/$method &
  L=$!
  sleep 0.5
  ip netns exec hbA unshare --pid --fork --kill-child --mount-proc --uts --mount sh -c "
    hostname nodeA
    mount --bind $d/etc /etc/ha.d; mount --bind $d/lib /var/lib/heartbeat; mount --bind $d/run /run; mount --bind $d/log /var/log
    /usr/libexec/heartbeat/heartbeat >/dev/null 2>&1; sleep 14" 
  wait $L
  echo "$method: $(ls ${OUT:-/tmp/hbcap}/$method | wc -l) packets"
done
ip netns del hbA; ip netns del hbB
