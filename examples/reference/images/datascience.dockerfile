# The image of the data-science courses. Pin the base by digest in
# production: a moving tag rebuilds into something new every time.
FROM quay.io/jupyter/scipy-notebook:2024-10-07
ARG PYTHON_VERSION
USER root
RUN pip install --no-cache-dir seaborn==0.13.2 scikit-learn==1.5.2
# nbh-sync puts its start script in the build context; it starts the
# server as the student's uid, so the image must stay root.
COPY start-in-dir-as-uid.sh /usr/local/bin/start-in-dir-as-uid.sh
