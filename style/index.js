import './base.css';
import './labeling.css';
