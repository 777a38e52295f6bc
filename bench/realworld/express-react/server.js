// The storefront's API: settings come from the environment, never from the image.
const express = require("express");
const helmet = require("helmet");
const morgan = require("morgan");
const path = require("path");

const app = express();
app.use(helmet());
app.use(morgan("combined"));
app.use(express.json());
app.get("/api/health", (req, res) => res.json({ ok: true }));
app.use(express.static(path.join(__dirname, "dist")));
app.listen(process.env.PORT || 3000);
