#!/bin/sh
# start-in-dir-as-uid.sh DIR UID COMMAND...
#
# nbh-sync's start script: run COMMAND in DIR as the numeric UID, the way
# nbhosting starts a student's notebook server. It
#   - creates a user for UID when the image has none (useradd, busybox
#     adduser, or a line appended to /etc/passwd),
#   - makes DIR writable by UID, on DIR's own file system only (mounts under
#     DIR, such as the student's work or a read-only course, are left alone),
#   - sets HOME to DIR and execs COMMAND as UID (setpriv, su-exec, gosu,
#     runuser, chpst or su: whichever the image has).
# POSIX sh only; it runs in Debian, Alpine and busybox images alike.
set -eu

me=start-in-dir-as-uid.sh
if [ "$#" -lt 3 ]; then
    echo "usage: $me DIR UID COMMAND..." >&2
    exit 2
fi
dir=$1
uid=$2
shift 2
case $uid in
    '' | *[!0-9]*)
        echo "$me: UID must be a number, got '$uid'" >&2
        exit 2
        ;;
esac

have() { command -v "$1" >/dev/null 2>&1; }

# lookup_uid sets name and gid from the /etc/passwd line of uid, if any.
lookup_uid() {
    name=
    gid=
    [ -r /etc/passwd ] || return 0
    while IFS=: read -r n _ u g _; do
        if [ "$u" = "$uid" ]; then
            name=$n
            gid=$g
            return 0
        fi
    done </etc/passwd
}

mkdir -p "$dir"
lookup_uid
if [ -z "$name" ]; then
    new=nbh$uid
    if have useradd; then
        useradd -M -d "$dir" -u "$uid" -s /bin/sh "$new" >/dev/null 2>&1 || true
    elif have adduser; then
        adduser -D -H -h "$dir" -u "$uid" -s /bin/sh "$new" >/dev/null 2>&1 || true
    fi
    lookup_uid
    if [ -z "$name" ]; then
        # No tool (or it failed): a plain passwd line is all exec needs.
        echo "$new:x:$uid:$uid:nbh-sync user:$dir:/bin/sh" >>/etc/passwd
        if [ -w /etc/group ] || [ ! -e /etc/group ]; then
            echo "$new:x:$uid:" >>/etc/group
        fi
        lookup_uid
    fi
fi
[ -n "$gid" ] || gid=$uid

# Own DIR, but neither cross into other file systems (-xdev) nor into mount
# points under DIR, which may be bind mounts of the same device (-prune).
own_dir() {
    set --
    if [ -r /proc/mounts ]; then
        while read -r _dev mp _rest; do
            case $mp in
                "$dir"/*) set -- "$@" -path "$mp" -prune -o ;;
            esac
        done </proc/mounts
    fi
    find "$dir" -xdev "$@" ! -user "$uid" -exec chown "$uid:$gid" {} + 2>/dev/null || true
}
own_dir

cd "$dir"
HOME=$dir
export HOME
if [ -n "$name" ]; then
    USER=$name
    LOGNAME=$name
    export USER LOGNAME
fi

if [ "$(id -u)" = "$uid" ]; then
    exec "$@"
fi
# Tools that keep the environment first; the others reset HOME, so env
# puts it back. busybox's setpriv cannot change uids: ask for util-linux's.
setpriv_uid() { have setpriv && case $(setpriv --help 2>&1) in *--reuid*) true ;; *) false ;; esac; }
if setpriv_uid; then
    exec setpriv --reuid="$uid" --regid="$gid" --init-groups "$@"
elif have su-exec; then
    exec su-exec "$uid:$gid" "$@"
elif have gosu; then
    exec gosu "$uid:$gid" env HOME="$dir" "$@"
elif have runuser && [ -n "$name" ]; then
    exec runuser -u "$name" -- env HOME="$dir" "$@"
elif have chpst; then
    exec chpst -u ":$uid:$gid" env HOME="$dir" "$@"
elif have su && [ -n "$name" ]; then
    # su runs a shell: COMMAND goes through as positional parameters, so
    # nothing in it is re-parsed.
    exec su -s /bin/sh -c 'cd "$1" && HOME=$1 && export HOME && shift && exec "$@"' "$name" sh "$dir" "$@"
fi
echo "$me: no way to switch to uid $uid (need setpriv, su-exec, gosu, runuser, chpst or su)" >&2
exit 1
