#!/bin/busybox sh
# rdinit= program of tests/vm_watchdog.rs's wedged boot: a minimal init
# that runs berth as a service (not PID 1) with berth.json's watchdog,
# waits until berth has armed it, then stops berth with SIGSTOP, as a
# wedged loop would stop. The watchdog (softdog) must then reset the
# machine; this init itself never ends (PID 1 must not).
b=/bin/busybox
$b mount -t proc proc /proc
$b mount -t sysfs sysfs /sys
$b mount -t devtmpfs devtmpfs /dev
$b mount -t tmpfs tmpfs /run
$b insmod /lib/modules/watchdog.ko
$b insmod /lib/modules/softdog.ko
/init daemon --config /etc/berth > /run/berth.log 2>&1 &
pid=$!
until $b grep -q "armed" /run/berth.log 2>/dev/null; do $b sleep 0.2; done
$b cat /run/berth.log
$b sleep 1
echo "test-init: SIGSTOP berth (pid $pid)"
$b kill -STOP "$pid"
while :; do $b sleep 60; done
