import React from "react";
import { createRoot } from "react-dom/client";
import { BrowserRouter, Routes, Route } from "react-router-dom";
import Button from "@mui/material/Button";

function Home() {
  return <Button variant="contained">Shop now</Button>;
}

createRoot(document.getElementById("root")).render(
  <BrowserRouter><Routes><Route path="/" element={<Home />} /></Routes></BrowserRouter>
);
