# The full reproduction in a container: stage 1, then stage 2 on its pseudolabels.
# Mount the competition files at /app/data (or override the command with --demo).
FROM python:3.11-slim
WORKDIR /app
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY config.py prepare_data.py train.py predict.py repro.py ./
COPY pertnet/ pertnet/
RUN mkdir -p data models submissions
CMD ["python", "-m", "repro", "--stage", "stage_2"]
