"""alloop.tools.judge"""
