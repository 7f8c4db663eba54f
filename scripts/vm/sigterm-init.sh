#!/bin/busybox sh
# rdinit= program of tests/vm_boot.rs's SIGTERM boot: the operator's
# `kill -TERM 1`, from a shell in the machine's own PID namespace (a
# container cannot even setns(2) into an ancestor namespace). It forks that
# shell and execs berth, which is PID 1 as ever; the shell, now berth's
# child, waits until PID 1 catches SIGTERM (bit 15 of SigCgt), so the signal
# is never lost to a PID 1 without a handler. /proc is mounted by whoever
# comes first. It also waits for the test's container (`tail -f /dev/null`)
# to run, since containers start from berth's loop and a SIGTERM that came
# first would (rightly) cancel the start. Needs /bin/busybox and /dev/null
# (ash gives a background job /dev/null as stdin) in the initramfs.
/bin/busybox sh -c '
  b=/bin/busybox
  [ -e /proc/1/status ] || $b mount -t proc proc /proc
  until c=$($b sed -n "s/^SigCgt:[[:space:]]*//p" /proc/1/status) && [ $(( 0x$c & 0x4000 )) -ne 0 ]; do
    $b sleep 0.1
  done
  until ( for p in /proc/[0-9]*/cmdline; do
            $b tr "\000" " " <$p 2>/dev/null | $b grep -q "^tail -f /dev/null" && exit 0
          done; exit 1 ); do
    $b sleep 0.1
  done
  $b sleep 1
  echo "test-init: kill -TERM 1"
  $b kill -TERM 1' &
exec /init
