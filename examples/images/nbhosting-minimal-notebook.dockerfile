# The site's core image: every other image of the demo builds FROM it.
# Its base is a Jupyter server made from Debian packages, with no registry
# (testimages/jupyter/build.sh --gen 2; make run builds it when missing).
FROM nbhtest-jupyter2:latest
USER root
# Debian ships jupyter_server without the `jupyter` command; this one runs
# jupyter-SUB as jupyter_core's dispatcher does, so `jupyter lab` works.
RUN printf '#!/bin/sh\nsub=$1\nshift\nexec "jupyter-$sub" "$@"\n' >/usr/local/bin/jupyter \
 && chmod 755 /usr/local/bin/jupyter
# nbh-sync puts its start script in the build context; it starts the
# server as the student's uid, so the image must stay root.
COPY start-in-dir-as-uid.sh /usr/local/bin/start-in-dir-as-uid.sh
