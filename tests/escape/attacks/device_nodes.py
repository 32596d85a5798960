# [device nodes] Create device nodes (in /dev and in our own folder) and open the host's disks, loop devices and
# kernel log.
# ruff: noqa: F821 - a fragment: tests/escape/run.py prepends os, time, ESCAPE, report, attempt, keep
import stat

tries = {
    "mknod_dev": attempt(lambda: os.mknod(f"/dev/escape-{ESCAPE['tag']}", stat.S_IFCHR | 0o666, os.makedev(1, 3))),
    "mknod_own_folder": attempt(lambda: os.mknod("loop-node", stat.S_IFBLK | 0o666, os.makedev(7, 0))),
}
for node in ("/dev/loop0", "/dev/kmsg", "/dev/mem", "/dev/kvm", "/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/tty"):
    if os.path.exists(node):
        tries[node] = attempt(lambda node=node: os.close(os.open(node, os.O_RDONLY | os.O_NONBLOCK)))
if os.path.exists("loop-node"):
    tries["open_own_node"] = attempt(lambda: os.close(os.open("loop-node", os.O_RDONLY)))
report(tries=tries)
