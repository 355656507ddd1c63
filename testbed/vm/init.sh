#!/bin/sh
# /init of the directord test VM (testbed/vm). It prepares a minimal system,
# loads the kernel modules listed in /etc/directord-vm/modules, runs
# /job/run.sh, prints the exit marker the host waits for, and powers off.
# Busybox's shell runs its own applets before PATH, so iproute2 is always
# called as /usr/sbin/ip.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
# /tmp becomes a tmpfs, keeping what the job archive put there (go test's
# build directory lives under /tmp): move it over, then mount in place.
mkdir -p /.tmp
mount -t tmpfs -o mode=1777 tmpfs /.tmp
cp -a /tmp/. /.tmp/ && rm -rf /tmp/* /tmp/.[!.]* 2>/dev/null
mount --move /.tmp /tmp
rmdir /.tmp
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
exec </dev/null >/dev/console 2>&1
# Keep kernel chatter off the console the job writes to; panics still print.
debug=false
grep -q directord.vm.debug=1 /proc/cmdline && debug=true
$debug || echo 1 >/proc/sys/kernel/printk
$debug && echo "directord-vm: init up at $(cut -d' ' -f1 /proc/uptime)s of guest uptime"
# No CR/LF translation: the host gets the job's bytes unchanged.
stty -F /dev/console -opost 2>/dev/null
hostname directord-vm
/usr/sbin/ip link set lo up
# One busybox modprobe loads them all, in modules.dep order: a process per
# module costs more than the loading under TCG.
set --
while read -r m; do
	set -- "$@" "$m"
done </etc/directord-vm/modules
modprobe -a "$@" || echo "directord-vm: loading kernel modules failed: $*"
$debug && echo "directord-vm: modules loaded at $(cut -d' ' -f1 /proc/uptime)s"
nonce=$(cat /job/nonce)
export DIRECTORD_VM_GUEST=1
echo "DIRECTORD-VM-START-$nonce"
/bin/sh /job/run.sh
rc=$?
sync
# Job.Collect: the paths that exist go back as tar over ttyS1; tar closes the
# port, which waits for the output to drain.
if [ -s /job/collect ]; then
	cd /
	set --
	while read -r p; do
		[ -e "$p" ] && set -- "$@" "$p"
	done </job/collect
	if [ $# -gt 0 ]; then
		stty -F /dev/ttyS1 raw -echo 2>/dev/null
		tar -cf /dev/ttyS1 "$@" || echo "directord-vm: collecting files failed"
	fi
fi
echo "DIRECTORD-VM-EXIT-$nonce $rc"
poweroff -f
