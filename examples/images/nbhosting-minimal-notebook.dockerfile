# The site's core image: every other image of the demo builds FROM it.
# Its base is a Jupyter server made from Debian packages, with no registry
# (testimages/jupyter/build.sh --gen 2; make run builds it when missing).
# There, `jupyter lab` (the command of examples/courses.yaml) lands on
# nbclassic's file browser: the base has no JupyterLab.
FROM nbhtest-jupyter2:latest
USER root
# nbh-sync puts its start script in the build context; it starts the
# server as the student's uid, so the image must stay root.
COPY start-in-dir-as-uid.sh /usr/local/bin/start-in-dir-as-uid.sh
