# class 1: exit with status 0 during import, before any draw
import os
os._exit(0)
