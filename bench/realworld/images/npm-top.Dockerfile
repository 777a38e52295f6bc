FROM layerscan-bench/base:bookworm
WORKDIR /app
COPY generated/npm-top/package.json /app/package.json
RUN npm install
