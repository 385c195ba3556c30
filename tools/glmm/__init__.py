"""alloop.tools.glmm"""
