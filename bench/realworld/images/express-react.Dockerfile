FROM layerscan-bench/base:bookworm
COPY apt.txt /tmp/apt.txt
RUN apt-get update && grep -v '^#' /tmp/apt.txt | xargs apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /tmp/apt.txt
WORKDIR /app
COPY express-react/package.json /app/package.json
RUN npm install
COPY express-react /app
RUN npm run build
CMD ["node", "server.js"]
