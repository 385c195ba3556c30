"""alloop.tools.jspsych"""
