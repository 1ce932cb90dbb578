"""The online prediction service (`unified-assets serve`): every promoted model over HTTP."""
