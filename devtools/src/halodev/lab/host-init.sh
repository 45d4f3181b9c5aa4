#!/bin/sh
# PID 1 of one lab host. labctl.py starts it as
#   ip netns exec <host netns> unshare --mount --uts --ipc --pid --fork --kill-child sh host-init.sh
# so it already sits in the host's own network, mount, UTS, IPC and PID namespaces.
# It builds a copy-on-write root (overlayfs over the machine's /, changes on a tmpfs
# that dies with this mount namespace), pivots into it, starts sshd on the host's
# address and then only reaps orphans until labctl kills it.
#
# Inputs (environment): HALOLAB_HOST (hostname), HALOLAB_IP (address sshd listens on),
# HALOLAB_PUBKEY (public key file for root), HALOLAB_HOSTS (the lab's /etc/hosts),
# HALOLAB_MNT (an empty directory to mount the host's tmpfs on; the mount is private to
# this namespace), HALOLAB_TMPFS_SIZE, HALOLAB_PYTHON (a Python with halodev installed: runs halodev.lab.boot_sysctl).
set -eu

: "${HALOLAB_HOST:?}" "${HALOLAB_IP:?}" "${HALOLAB_PUBKEY:?}" "${HALOLAB_HOSTS:?}" "${HALOLAB_MNT:?}" "${HALOLAB_PYTHON:?}"
size=${HALOLAB_TMPFS_SIZE:-512m}
mnt=$HALOLAB_MNT
root=$mnt/root

# Nothing mounted here may leak back into the machine's mount namespace.
mount --make-rprivate /

mount -t tmpfs -o "size=$size,mode=0755" halolab "$mnt"
mkdir "$mnt/upper" "$mnt/work" "$root"
mount -t overlay halolab -o "lowerdir=/,upperdir=$mnt/upper,workdir=$mnt/work" "$root"

# The overlay holds only the root filesystem; give the host its own kernel views and
# its own scratch space instead of the machine's.
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"  # `ip netns exec` mounted this netns's sysfs there
mount -t tmpfs -o mode=0755,nosuid,nodev run "$root/run"
mount -t tmpfs -o mode=1777,nosuid,nodev tmp "$root/tmp"
mkdir -p "$root/run/sshd" "$root/run/lock"
mount -t tmpfs -o mode=0755,nosuid dev "$root/dev"
mknod -m 666 "$root/dev/null" c 1 3
mknod -m 666 "$root/dev/zero" c 1 5
mknod -m 666 "$root/dev/full" c 1 7
mknod -m 666 "$root/dev/random" c 1 8
mknod -m 666 "$root/dev/urandom" c 1 9
mknod -m 666 "$root/dev/tty" c 5 0
mkdir "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"

# Identity: own hostname and machine-id, so the hosts do not look like clones.
hostname "$HALOLAB_HOST"
echo "$HALOLAB_HOST" >"$root/etc/hostname"
cp "$HALOLAB_HOSTS" "$root/etc/hosts"
tr -d - </proc/sys/kernel/random/uuid >"$root/etc/machine-id"

# root's shell files come from the machine's root, which may run slow tool set-ups
# (pyenv, cargo) on every ssh command; a fresh host has the distribution's defaults.
for file in .bashrc .profile; do
    rm -f "$root/root/$file"
    if [ -e "/etc/skel/$file" ]; then cp "/etc/skel/$file" "$root/root/"; fi
done
mkdir -p "$root/root/.ssh"
chmod 0700 "$root/root/.ssh"
cp "$HALOLAB_PUBKEY" "$root/root/.ssh/authorized_keys"
chmod 0600 "$root/root/.ssh/authorized_keys"
# man-db's trigger makes every dpkg run 25 times slower and nobody reads man pages here.
rm -f "$root/var/lib/man-db/auto-update"

# Boot-time kernel parameters, as systemd-sysctl would set them from the host's own files:
# this network namespace starts at the kernel's defaults, and a scan of the running host
# compares the live values. Only net.* is per namespace; the rest is skipped (see the log).
"$HALOLAB_PYTHON" -m halodev.lab.boot_sysctl "$root"

cd "$root"
mkdir -p .oldroot
pivot_root . .oldroot
cd /
umount -l /.oldroot
rmdir /.oldroot

# Command-line options win over sshd_config, so a host whose sshd_config gets broken by a
# test still starts the same way. No PAM: there is no logind here.
/usr/sbin/sshd -o "ListenAddress=$HALOLAB_IP" -o UsePAM=no -o PasswordAuthentication=no \
    -o PermitRootLogin=prohibit-password -o PidFile=/run/sshd.pid
echo "halolab host $HALOLAB_HOST up"

# As PID 1 this shell inherits every orphan. `wait` on a job makes dash reap any child
# that exits meanwhile, so orphans never stay zombies.
exec </dev/null >/dev/null 2>&1
while :; do
    sleep 3600 &
    wait
done
