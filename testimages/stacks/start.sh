#!/bin/sh
# The part of docker-stacks' start.sh that matters here: started as root,
# it runs the command as NB_USER; started as anyone else, it runs it as is.
set -eu
if [ "$(id -u)" = 0 ]; then
    exec runuser -u "${NB_USER:-jovyan}" -- "$@"
fi
exec "$@"
