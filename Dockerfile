# The full reproduction in a container: stage 1, then stage 2 on its pseudolabels.
# The Kaggle files in data/ at `docker build` go into the image (.dockerignore leaves out the demo,
# prepared arrays, models and submissions); or mount them at /app/data when running it.
FROM python:3.11-slim
WORKDIR /app
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt
# the data before the code, so that a code change does not copy the data again
COPY data/ data/
# config.py and every command (the repository root holds nothing else in Python)
COPY *.py ./
COPY pertnet/ pertnet/
RUN mkdir -p models submissions
CMD ["python", "-m", "repro", "--stage", "stage_2"]
