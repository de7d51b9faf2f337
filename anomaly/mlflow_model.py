"""The pyfunc model MLflow logs for a bundle ("models from code": this file is copied into the
model and executed by `mlflow.pyfunc.load_model`; the package never imports it, nothing is pickled).

    model = mlflow.pyfunc.load_model("models:/<name>@champion")
    model.predict(pd.DataFrame({"image": [base64.b64encode(png_bytes).decode()]}))
    # -> DataFrame: score, normalised_score, is_anomalous, threshold (one row per image)
"""

from __future__ import annotations

import base64

import mlflow
import pandas as pd


class AnomalyModel(mlflow.pyfunc.PythonModel):
    """Scores base64-encoded image files with the Detector rebuilt from the `bundle` artifact."""

    def load_context(self, context) -> None:
        from anomaly.detector import Detector

        self.detector = Detector.load(context.artifacts["bundle"])

    def predict(self, context, model_input, params=None):
        """model_input: DataFrame with a string column `image` (base64 of PNG/JPEG/TIFF/... bytes)."""
        if not isinstance(model_input, pd.DataFrame) or "image" not in model_input:
            raise ValueError("expected a DataFrame with a column 'image' of base64-encoded image files")
        images = [base64.b64decode(value) for value in model_input["image"]]
        predictions = self.detector.predict(images)
        return pd.DataFrame({
            "score": [p.score for p in predictions],
            "normalised_score": [p.normalised_score for p in predictions],
            "is_anomalous": [p.is_anomalous for p in predictions],
            "threshold": [p.threshold for p in predictions],
        })


mlflow.models.set_model(AnomalyModel())
