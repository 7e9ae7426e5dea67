"""fashion-web: a web page and JSON API that classify clothing through the model's endpoint (twin or Vertex AI)."""
