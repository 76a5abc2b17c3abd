"""Transfer learning: fixed embeddings (pretrained networks, MFCC or log-mel statistics) read by scikit-learn
heads, as Tune trials beside the neural ones (``classifier`` set in a trial's config)."""
