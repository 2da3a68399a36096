"""visuomotor: end-to-end visuomotor policies on real robot arms with ROS 2."""

__version__ = '0.1.0'
